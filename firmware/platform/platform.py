from platformio.public import PlatformBase


class HarnesscortexmPlatform(PlatformBase):
    """Platform without packages: the toolchain comes from the system PATH."""
