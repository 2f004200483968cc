"""Entry point PlatformIO runs as `tool-scons/scons.py`.

PlatformIO 6.2.0 starts builds with `python <tool-scons>/scons.py ...` using
the interpreter it runs in.  This stand-in imports the SCons that pip
installed into that same virtual environment (scons==4.11.1, the release
PlatformIO's tool-scons 4.41101.0 packages), so no download is needed.
"""

import sys

from SCons.Script.Main import main

if __name__ == "__main__":
    sys.exit(main())
