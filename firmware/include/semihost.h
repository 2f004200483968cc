/* ARM semihosting calls, used only on emulated builds. */
#ifndef HARNESS_SEMIHOST_H
#define HARNESS_SEMIHOST_H

/* End the emulator with exit status `code` (SYS_EXIT_EXTENDED); never returns. */
void semihost_exit(int code) __attribute__((noreturn));

#endif
