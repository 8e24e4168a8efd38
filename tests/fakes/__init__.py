"""Test doubles for unit tests: the in-memory broker (`fakes.broker`) and a converter rigged to it (`fakes.rig`)."""
