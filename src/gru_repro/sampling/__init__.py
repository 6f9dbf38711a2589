"""Listen to the models: sample music as MIDI, speech as WAV, pictures and TensorBoard.

``load_run`` rebuilds a model from a run folder or checkpoint; ``sample_music`` /
``sample_speech`` draw sequences step by step; ``write_midi`` / ``write_wav`` write them;
``export.write_samples`` does all of it for ``python -m gru_repro.sample``.
"""

from gru_repro.sampling.generate import SpeechFraming, is_speech, sample_music, sample_speech
from gru_repro.sampling.loading import LoadedRun, find_checkpoint, load_run
from gru_repro.sampling.midi_io import roll_to_midi, write_midi
from gru_repro.sampling.wav_io import read_wav, write_wav

__all__ = [
    "LoadedRun",
    "SpeechFraming",
    "find_checkpoint",
    "is_speech",
    "load_run",
    "read_wav",
    "roll_to_midi",
    "sample_music",
    "sample_speech",
    "write_midi",
    "write_wav",
]
