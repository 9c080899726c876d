"""The mouth region of a face crop in token space: what the reference-mouth probe and its training form blank out."""
from fada_stream.mouth_region import region_tokens


def test_the_mouth_region_is_the_lower_middle_of_the_face_crop():
    mouth = region_tokens(8).view(8, 8)
    assert mouth.sum() == 8 and mouth[5:7, 2:6].all()  # pixels 80-111 x 32-95 of a 128 px face: lips, jaw, chin
    assert region_tokens(16).view(16, 16)[10:14, 4:12].all() and region_tokens(16).sum() == 32  # the same box, finer


def test_a_region_holds_the_tokens_whose_centres_lie_inside_its_box():
    assert region_tokens(4, (0.0, 1.0, 0.0, 1.0)).all() and not region_tokens(4, (0.0, 0.1, 0.0, 1.0)).any()
    assert region_tokens(2, (0.5, 1.0, 0.0, 0.5)).tolist() == [False, False, True, False]  # bottom left, row-major
