"""swimbench: what experts cost in a Mamba token mixer, measured."""
__version__ = "0.1.0"
