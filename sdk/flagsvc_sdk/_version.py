"""The SDK's version: the one place it is written (the wheel's metadata reads it here,
``flagsvc_sdk.__version__`` and the User-Agent of every request carry it)."""

__version__ = "1.0.0"
