"""Helpers that drive Debian's headless Chromium for the review page."""
