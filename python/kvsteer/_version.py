# The version of libkvsteer these bindings are written for (CMakeLists.txt's
# project(VERSION)); the library is checked against it when it is loaded.
__version__ = "0.1.0"
