"""Scanning: QR decoding of frames (pure, off the loop) and the camera scan worker."""
