"""lrd-plugin: Latent Refinement Decoding (arXiv 2510.11052) for masked diffusion language models."""

from .adapters import Denoiser, HFDenoiser
from .config import LRDConfig
from .decoder import GenerationOutput, generate
from .sampler import BlockState, LRDSampler, Phase

__all__ = [
    "BlockState",
    "Denoiser",
    "GenerationOutput",
    "HFDenoiser",
    "LRDConfig",
    "LRDSampler",
    "Phase",
    "generate",
]
__version__ = "0.1.0"
