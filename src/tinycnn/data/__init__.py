"""The data: verified MNIST / Fashion-MNIST files (datasets.py, idx.py), and the splits as
uint8 tensors on the training device, batched and augmented there (loader.py, augment.py)."""
