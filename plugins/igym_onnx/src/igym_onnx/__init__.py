"""ONNX policies for igym: bots from ``.onnx`` files, batched on the server, the same in the browser.

``OnnxPolicy(path="bot.onnx", preprocess=Preprocess(...))`` (or ``{"kind": "onnx", ...}``) names the
bot of a seat; see the package README.
"""

from importlib.metadata import PackageNotFoundError, version

from igym_onnx.config import OnnxConfigError, OnnxPolicy, Preprocess

try:
    __version__ = version("igym-onnx")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = ["OnnxConfigError", "OnnxPolicy", "Preprocess", "__version__"]
