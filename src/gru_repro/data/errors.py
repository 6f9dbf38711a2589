"""Errors the data layer raises; each message is one line that says what to do."""

from __future__ import annotations

import pickle


class DataError(RuntimeError):
    """Base class: a data set could not be fetched, verified or read."""


class ChecksumError(DataError):
    """A file's SHA-256 does not match the manifest."""


class FetchError(DataError):
    """A file is missing and neither the mirror nor its URL could provide it."""


class UnknownDatasetError(DataError, ValueError):
    """A data set name that is not registered."""


class UnreadableFileError(DataError):
    """A data file exists but cannot be parsed (MIDI, pickle, .mat)."""


class UnsafePickleError(DataError, pickle.UnpicklingError):
    """A pickle asked for a global outside the allowed few."""
