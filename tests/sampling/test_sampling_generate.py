"""Sampling loops: known output distributions, feedback of each sample, seeds, TensorBoard."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gru_repro.data.speech_framing import Framing, Normalisation
from gru_repro.data.splits import DataFacts, DataKind
from gru_repro.models import build_model
from gru_repro.sampling.generate import sample_music, sample_speech
from gru_repro.sampling.tensorboard import log_samples

FRAMING = Framing(input_window=20, target_window=10, hop=10)
NORM = Normalisation(mean=0.01, std=0.2)
SPEECH = DataFacts(DataKind.SPEECH, FRAMING, NORM, {"sample_rate": 8000})
MUSIC = DataFacts(DataKind.MUSIC, info={"frame_rate": 4, "pitch_low": 21})


def music_model(unit: str = "gru", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(unit, 88, 88, hidden_size=12, head="bernoulli")


def speech_model(unit: str = "lstm", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(unit, 20, 10, hidden_size=12, head="gmm")


def head_linear(model: nn.Module) -> nn.Linear:
    (linear,) = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    return linear


def test_music_notes_have_the_frequencies_the_head_is_set_to():
    model = music_model()
    p = torch.linspace(0.02, 0.98, 88)
    with torch.no_grad():
        head_linear(model).weight.zero_()
        head_linear(model).bias.copy_(torch.logit(p))
    rolls = sample_music(model, n=50, length=80, generator=torch.Generator().manual_seed(1))
    assert rolls.shape == (80, 50, 88)
    assert set(rolls.unique().tolist()) <= {0.0, 1.0}
    frequency = rolls.mean(dim=(0, 1))
    # 4,000 draws per note: the standard error is at most 0.0079; allow 5 of them.
    assert torch.max(torch.abs(frequency - p)) < 0.04
    assert torch.corrcoef(torch.stack([frequency, p]))[0, 1] > 0.99


def test_speech_samples_have_the_mean_and_variance_of_the_set_mixture():
    model = speech_model()
    head = model.head
    k, d = head.n_components, head.output_size
    logits = torch.full((k,), -40.0)
    logits[:2] = torch.log(torch.tensor([0.3, 0.7]))
    means = torch.zeros(k, d)
    means[0], means[1] = -1.0, 2.0
    scales = torch.full((k, d), 0.5)
    raw_scales = torch.log(torch.expm1(scales - head.min_scale))
    with torch.no_grad():
        head_linear(model).weight.zero_()
        head_linear(model).bias.copy_(
            torch.cat([logits, means.reshape(-1), raw_scales.reshape(-1)])
        )
    waves = sample_speech(
        model, FRAMING, NORM, n=40, length=1000, generator=torch.Generator().manual_seed(2)
    )
    assert waves.shape == (40, 1000)
    normalised = (waves - NORM.mean) / NORM.std
    mean = 0.3 * -1.0 + 0.7 * 2.0
    variance = 0.3 * (0.25 + 1.0) + 0.7 * (0.25 + 4.0) - mean**2
    # 40,000 draws: standard error of the mean 0.007, of the variance about 0.02.
    assert normalised.mean().item() == pytest.approx(mean, abs=0.04)
    assert normalised.var().item() == pytest.approx(variance, abs=0.1)
    # Bimodal as set: about 30 % of the samples below the midpoint 0.5.
    assert (normalised < 0.5).float().mean().item() == pytest.approx(0.3, abs=0.02)
    # Normalisation undone: raw samples live on the waveform's scale.
    assert waves.mean().item() == pytest.approx(NORM.mean + NORM.std * mean, abs=0.01)


@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_each_music_frame_is_drawn_from_the_model_fed_the_previous_frames(unit):
    """Replaying the whole sampled sequence through the model redraws every frame exactly."""
    model = music_model(unit)
    primer = (torch.rand(5, 88, generator=torch.Generator().manual_seed(3)) < 0.2).float()
    rolls = sample_music(
        model, n=3, length=12, generator=torch.Generator().manual_seed(4), primer=primer
    )
    assert rolls.shape == (17, 3, 88)
    torch.testing.assert_close(rolls[:5], primer.unsqueeze(1).expand(-1, 3, -1))
    with torch.no_grad():
        params, _ = model(rolls[:-1])  # whole sequence at once: (16, 3, 88)
    replay = torch.Generator().manual_seed(4)
    for t in range(4, 16):
        torch.testing.assert_close(model.head.sample(params[t], replay), rolls[t + 1])


def test_each_speech_step_sees_the_last_20_samples_including_its_own_draws():
    model = speech_model("gru")
    primer = 0.1 * torch.randn(57, generator=torch.Generator().manual_seed(5))
    waves = sample_speech(
        model,
        FRAMING,
        NORM,
        n=2,
        length=45,
        generator=torch.Generator().manual_seed(6),
        primer=primer,
    )
    kept = 20 + (57 - 20) // 10 * 10  # 47 primer samples: windows end exactly at its last one
    assert waves.shape == (2, kept + 50)  # 45 samples rounded up to 5 hops
    torch.testing.assert_close(waves[:, :kept], primer[-kept:].expand(2, -1))
    normalised = (waves - NORM.mean) / NORM.std
    windows = normalised[:, :-10].unfold(1, 20, 10).permute(1, 0, 2)  # (T, 2, 20)
    with torch.no_grad():
        params, _ = model(windows)
    replay = torch.Generator().manual_seed(6)
    first_sampled_step = (kept - 20) // 10
    for t in range(first_sampled_step, windows.shape[0]):
        start = 20 + 10 * t
        expected = model.head.sample(params[t], replay)
        torch.testing.assert_close(expected, normalised[:, start : start + 10], atol=1e-5, rtol=0)


def test_same_seed_same_samples_other_seed_other_samples():
    model = music_model()

    def draw(seed: int) -> torch.Tensor:
        return sample_music(model, n=2, length=30, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))
    speech = speech_model()

    def say(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return sample_speech(speech, FRAMING, NORM, n=1, length=100, generator=generator)

    assert torch.equal(say(7), say(7))
    assert not torch.equal(say(7), say(8))


class RecordingWriter:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def add_image(self, tag, image, step, dataformats="CHW"):
        self.calls.append(("image", tag, np.asarray(image), step, dataformats))

    def add_audio(self, tag, audio, step, sample_rate=44100):
        self.calls.append(("audio", tag, torch.as_tensor(audio), step, sample_rate))


def test_log_samples_adds_piano_rolls_for_music_and_audio_for_speech(tmp_path):
    writer = RecordingWriter()
    log_samples(writer, music_model(), MUSIC, step=3, n=2, length=16)
    ((kind, tag, image, step, formats),) = writer.calls
    assert (kind, tag, step, formats) == ("image", "samples/piano_roll", 3, "CHW")
    assert image.shape == (1, 2 * 88 + 1, 16) and 0.0 <= image.min() <= image.max() <= 1.0
    writer = RecordingWriter()
    log_samples(writer, speech_model(), SPEECH, step=5, n=2, length=100)
    assert [(c[0], c[1], c[3], c[4]) for c in writer.calls] == [
        ("audio", "samples/audio_0", 5, 8000),
        ("audio", "samples/audio_1", 5, 8000),
    ]
    assert all(c[2].shape == (1, 100) and c[2].abs().max() <= 1.0 for c in writer.calls)
    # And through a real SummaryWriter, which checks the shapes and dtypes it is given.
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(tmp_path) as real:
        log_samples(real, music_model(), MUSIC, step=0, n=1, length=8)
        log_samples(real, speech_model(), SPEECH, step=0, n=1, length=50)
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_sampling_refuses_bad_requests():
    with pytest.raises(ValueError, match="length"):
        sample_music(music_model(), n=1, length=0, generator=torch.Generator())
    with pytest.raises(ValueError, match="at least 20 samples"):
        sample_speech(
            speech_model(),
            FRAMING,
            NORM,
            n=1,
            length=10,
            generator=torch.Generator(),
            primer=torch.zeros(5),
        )
    gappy = Framing(input_window=20, target_window=10, hop=5)  # draws could not be fed back
    with pytest.raises(ValueError, match="hop == target_window"):
        sample_speech(speech_model(), gappy, NORM, n=1, length=10, generator=torch.Generator())
