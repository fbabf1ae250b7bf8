"""The crowdfix command line and the zero-setup demo."""
