"""audiotransfer: audio transfer-learning studies end to end."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("audiotransfer")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

__all__ = ["__version__", "load_model"]


def __getattr__(name: str) -> object:
    if name == "load_model":  # imported on first use: `import audiotransfer` stays light for the CLI
        from audiotransfer.models.load import load_model

        return load_model
    raise AttributeError(f"module 'audiotransfer' has no attribute {name!r}")
