"""The train profile's command: proves the project files, the interpreter and the user."""

import os
import platform

print("hello from", platform.python_version(), "as uid", os.getuid(), "in", os.getcwd())
