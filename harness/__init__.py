"""Hardware-in-the-loop neural architecture search for Cortex-M microcontrollers."""

__version__ = "0.1.0"
