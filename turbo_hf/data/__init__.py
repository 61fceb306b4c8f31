"""Dataset loaders: IEMOCAP release, generic manifests, and their splits."""
