"""Helpers for tests and demos, not for training real models (as transformers' `testing_utils`):
tiny random encoders saved as pretrained folders, and a synthetic corpus that is not speech."""
