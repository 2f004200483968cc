"""Board profile names the hil tests parametrize over."""

EMULATED_BOARDS = ("qemu-mps2-an386", "qemu-mps2-an500", "qemu-netduinoplus2")
REAL_BOARDS = ("nucleo-f746zg", "nucleo-l4r5zi", "nrf52840dk")
