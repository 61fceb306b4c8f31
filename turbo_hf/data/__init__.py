"""Dataset loaders: IEMOCAP release, generic manifests, synthetic corpus."""
