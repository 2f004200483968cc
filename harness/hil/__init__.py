"""Hardware in the loop: board profiles, firmware builds, the serial link and deploy.

- `boards`: `boards/*.toml` profiles, validated on load.
- `build`: offline PlatformIO builds, incremental per board and runtime.
- `memory`: flash and RAM per region from the linker map and ELF.
- `protocol`, `transport`: the binary serial protocol over pyserial.
- `emulators`: QEMU (and Renode) runners.
- `deploy`: `harness deploy`, the device stage of a trial.
"""
