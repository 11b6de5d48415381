from .inference import inference_config

__all__ = ['inference_config']
