"""Restyling recolours an identity consistently: same look for its reference and frames, grey stays grey
without a hue-only change, and the looks vary."""
import torch

from distill.data.restyle import Look, restyle, restyle_cache_frames, sample_look


def test_identity_look_changes_nothing():
    frames = torch.randint(0, 256, (3, 8, 8, 3), dtype=torch.uint8)
    same = Look(hue=0.0, saturation=1.0, contrast=1.0, brightness=0.0, levels=0)
    assert (restyle(frames, same).int() - frames.int()).abs().max() <= 1


def test_hue_rotation_moves_colours_and_keeps_greys_and_luma():
    red = torch.tensor([[[[200, 60, 40]]]], dtype=torch.uint8)
    grey = torch.full((1, 1, 1, 3), 128, dtype=torch.uint8)
    look = Look(hue=2.0, saturation=1.0, contrast=1.0, brightness=0.0, levels=0)
    out = restyle(red, look)[0, 0, 0].float()
    assert out.argmax() != 0  # no longer a red
    luma = torch.tensor([0.299, 0.587, 0.114])
    assert abs(float(out @ luma) - float(red[0, 0, 0].float() @ luma)) < 12  # brightness kept (up to clipping)
    assert (restyle(grey, look).int() - 128).abs().max() <= 1


def test_posterised_look_has_few_levels():
    ramp = torch.arange(256, dtype=torch.uint8).view(1, 16, 16, 1).expand(1, 16, 16, 3).contiguous()
    look = Look(hue=0.0, saturation=1.0, contrast=1.0, brightness=0.0, levels=4)
    assert len(torch.unique(restyle(ramp, look))) == 4


def test_sampled_looks_vary_and_repeat_with_the_seed():
    looks = [sample_look(torch.Generator().manual_seed(s)) for s in range(20)]
    assert len({round(lk.hue, 3) for lk in looks}) == 20 and any(lk.levels for lk in looks) and any(not lk.levels for lk in looks)
    assert sample_look(torch.Generator().manual_seed(3)) == looks[3]


def test_a_cache_is_restyled_per_identity():
    # Two clips of identity 0, one of identity 1; every frame of a clip is the same flat colour.
    colours = torch.tensor([[200, 80, 60], [200, 80, 60], [60, 200, 80]], dtype=torch.uint8)
    frames = colours.repeat_interleave(2, 0).view(6, 1, 1, 3).expand(6, 4, 4, 3).contiguous()
    refs = colours[[0, 2]].view(2, 1, 1, 3).expand(2, 4, 4, 3).contiguous()
    out, out_refs = restyle_cache_frames(frames, refs, torch.tensor([0, 2, 4, 6]), torch.tensor([0, 0, 1]), seed=5)
    assert torch.equal(out[0], out[2]) and torch.equal(out[0], out_refs[0])  # one look for identity 0, reference included
    assert torch.equal(out[4], out_refs[1]) and not torch.equal(out[0], frames[0])
    out2, _ = restyle_cache_frames(frames, refs, torch.tensor([0, 2, 4, 6]), torch.tensor([0, 0, 1]), seed=5)
    assert torch.equal(out, out2)
