"""minidl test suite."""
