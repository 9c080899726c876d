"""Restyling recolours (and optionally reshapes) an identity consistently: same look for its reference and
frames, grey stays grey without a hue-only change, and the looks vary."""
import torch

from distill.data.restyle import Look, Shape, restyle, restyle_cache_frames, sample_look, sample_shape


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


def test_a_neutral_shape_changes_nothing():
    frames = torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8)
    plain = Look(hue=0.0, saturation=1.0, contrast=1.0, brightness=0.0, levels=0)
    neutral = Shape(sx=1.0, sy=1.0, dx=0.0, dy=0.0, grain=0.0, texture_seed=0)
    assert (restyle(frames, plain, neutral).int() - frames.int()).abs().max() <= 1


def test_a_shift_moves_the_picture_and_a_stretch_widens_it():
    frames = torch.zeros(1, 32, 32, 3, dtype=torch.uint8)
    frames[:, :, 14:18] = 255  # a white bar 4 px wide at the centre
    plain = Look(hue=0.0, saturation=1.0, contrast=1.0, brightness=0.0, levels=0)
    shifted = restyle(frames, plain, Shape(sx=1.0, sy=1.0, dx=0.125, dy=0.0, grain=0.0, texture_seed=0))
    assert shifted[0, 16, 18:22].min() == 255 and shifted[0, 16, 14].max() == 0  # 4 px (1/8 of 32) to the right
    wide = restyle(frames, plain, Shape(sx=1.5, sy=1.0, dx=0.0, dy=0.0, grain=0.0, texture_seed=0))
    assert int((wide[0, 16, :, 0] > 127).sum()) == 6 and torch.equal(wide[0, 0], wide[0, 31])  # 4 px -> 6 px, rows alike


def test_grain_is_a_static_texture_of_its_seed():
    grey = torch.full((3, 32, 32, 3), 128, dtype=torch.uint8)
    plain = Look(hue=0.0, saturation=1.0, contrast=1.0, brightness=0.0, levels=0)
    grainy = Shape(sx=1.0, sy=1.0, dx=0.0, dy=0.0, grain=0.2, texture_seed=7)
    out = restyle(grey, plain, grainy)
    assert torch.equal(out[0], out[2]) and (out.int() - 128).abs().max() > 5  # the same texture on every frame
    other = restyle(grey, plain, Shape(sx=1.0, sy=1.0, dx=0.0, dy=0.0, grain=0.2, texture_seed=8))
    assert not torch.equal(out, other)


def test_shapes_are_drawn_per_identity_after_the_looks():
    ramp = torch.arange(16, dtype=torch.uint8).mul(16).view(1, 1, 16, 1).expand(4, 16, 16, 3).contiguous()
    frame_start, clip_identity = torch.tensor([0, 2, 4]), torch.tensor([0, 1])
    out, refs = restyle_cache_frames(ramp, ramp[[0, 2]], frame_start, clip_identity, seed=5, shape=True)
    assert torch.equal(out[0], refs[0]) and torch.equal(out[1], out[0]) and torch.equal(out[2], refs[1])
    colour_only, _ = restyle_cache_frames(ramp, ramp[[0, 2]], frame_start, clip_identity, seed=5)
    gen = torch.Generator().manual_seed(5)
    looks = [sample_look(gen), sample_look(gen)]
    assert torch.equal(colour_only[0], restyle(ramp[:1], looks[0])[0])  # the same looks with or without shapes
    shapes = [sample_shape(gen), sample_shape(gen)]
    assert torch.equal(out[0], restyle(ramp[:1], looks[0], shapes[0])[0]) and not torch.equal(out[0], colour_only[0])
