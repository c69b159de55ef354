"""Synthetic data: fictional demo documents and the capture simulation that training
augments with. Nothing here is imported when serving."""
