"""own_vae: a convolutional VAE written outside lsx, and the lsx plugin that makes it a kind.

``own_vae.model`` is plain PyTorch; ``own_vae.lsx_plugin`` declares the kind ``ownvae`` (the
``lsx.models`` entry point in ``pyproject.toml``); ``own_vae.train`` trains it in a plain loop.
"""

__version__ = "0.1.0"
