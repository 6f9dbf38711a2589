"""Listen to the models: sample music as MIDI, speech as WAV, pictures and TensorBoard.

``load_run`` rebuilds a model from a run folder or checkpoint (its ``DataFacts`` say music or
speech); ``sample_music`` / ``sample_speech`` draw sequences step by step; ``write_midi`` /
``write_wav`` write them; ``export.write_samples`` does all of it for
``python -m gru_repro.sample``.
"""

from gru_repro.sampling.generate import sample_music, sample_speech
from gru_repro.sampling.loading import LoadedRun, find_checkpoint, load_run
from gru_repro.sampling.midi_io import roll_to_midi, write_midi
from gru_repro.sampling.wav_io import write_wav

__all__ = [
    "LoadedRun",
    "find_checkpoint",
    "load_run",
    "roll_to_midi",
    "sample_music",
    "sample_speech",
    "write_midi",
    "write_wav",
]
