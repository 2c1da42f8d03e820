"""Videos in a real crawl through the CLI: sampled in the hash workers, matched frame by frame
against image lists and as wholes against vPDQ video lists, reported with the times of the
matching frames, and never stored (no byte of a video nor of a decoded frame anywhere)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import av
import numpy as np
import pdqhash

from hotline.imagegen import encode, encode_video, textured_image
from hotline.loopback import Response, html_page, serve
from tests.helpers import HOST_A, ok_json, run_cli
from tests.nocontent import WindowFinder

from .test_crawl_files import _known_list, _leaks

KNOWN = 7300
SIZE: dict[str, Any] = {"width": 320, "height": 240, "fps": 10}


def _clip(container: str, **kw: Any) -> bytes:
    scenes = [(textured_image(KNOWN + 1), 3.0), (textured_image(KNOWN), 2.0)]
    return encode_video([*scenes, (textured_image(KNOWN + 2), 3.0)], container=container, **kw)


def _frames(data: bytes, pixel_format: str = "rgb24") -> list[tuple[float, np.ndarray]]:
    """(time, pixels) of one frame a second, decoded here with PyAV."""
    out = []
    with av.open(io.BytesIO(data), mode="r") as container:
        for frame in container.decode(video=0):
            if frame.time is not None and abs(frame.time - round(frame.time)) < 1e-3:
                out.append((float(frame.time), frame.to_ndarray(format=pixel_format)))
    return out


def _vpdq(data: bytes) -> str:
    """The video's vPDQ text, one frame a second, hashed with Meta's pdqhash here."""
    lines = []
    for number, (when, rgb) in enumerate(_frames(data)):
        bits, quality = pdqhash.compute(rgb)
        lines.append(f"{number},{quality},{np.packbits(bits).tobytes().hex()},{when:.3f}")
    return "\n".join(lines) + "\n"


def test_videos_are_matched_frame_by_frame_and_as_wholes_and_never_stored(
    env: dict[str, str], tmp_path: Path
) -> None:
    clip = _clip("mp4", **SIZE)
    copy = _clip("matroska", width=480, height=360, fps=10, bit_rate=150_000)
    listed_video = encode_video(
        [(textured_image(KNOWN + 5), 2.0), (textured_image(KNOWN + 6), 3.0)],
        container="matroska",
        **SIZE,
    )
    # The same video as the list knows it, from another encoding.
    listed_source = encode_video(
        [(textured_image(KNOWN + 5), 2.0), (textured_image(KNOWN + 6), 3.0)],
        container="mp4",
        width=480,
        height=360,
        fps=10,
    )
    unrelated = encode_video([(textured_image(KNOWN + 9), 4.0)], container="avi", **SIZE)
    broken = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 300
    # An animated GIF of 70 frames, 0.1 s each, the known picture only in the last four:
    # past the 64 frames an image's hashing looks into, so it is sampled as a video too.
    base = textured_image(KNOWN + 7).resize((96, 72))
    pictures = []
    for n in range(66):
        frame_picture = base.copy()
        frame_picture.putpixel((n % 96, 0), (255, 0, 0))  # its own (Pillow merges repeats)
        pictures.append(frame_picture)
    pictures += [textured_image(KNOWN).resize((96, 72))] * 4
    gif_out = io.BytesIO()
    pictures[0].save(
        gif_out, "GIF", save_all=True, append_images=pictures[1:], duration=100, loop=0
    )
    animation = gif_out.getvalue()
    webp_out = io.BytesIO()  # the same as an animated WebP (decoded by Pillow, not FFmpeg)
    pictures[0].save(webp_out, "WEBP", save_all=True, append_images=pictures[1:], duration=100)
    animated_webp = webp_out.getvalue()
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("movies/clip.mp4", clip)
    pack = packed.getvalue()

    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "known.png").write_bytes(encode(textured_image(KNOWN), "PNG"))
    assert run_cli(["hashes", "build", str(refs), "--list", "pics"], env).returncode == 0
    files = _known_list(tmp_path, [("sha256", hashlib.sha256(broken).hexdigest(), "b1")])
    assert run_cli(["hashes", "import", str(files), "--list", "files"], env).returncode == 0
    vpdq = tmp_path / "videos"
    vpdq.mkdir()
    (vpdq / "vid-17.txt").write_text(_vpdq(listed_source))
    result = run_cli(["hashes", "import", str(vpdq), "--vpdq", "--list", "videos"], env)
    assert result.returncode == 0, result.stderr

    def video(body: bytes, content_type: str) -> Response:
        return Response(200, {"Content-Type": content_type}, body)

    with serve(host=HOST_A) as site:
        site.mount(
            {
                "/": html_page(
                    "<video src='/v/clip.mp4'></video>"
                    "<video><source src='/v/copy.mkv' type='video/x-matroska'></video>"
                    "<a href='/dl/17.mkv'>download</a>"
                    "<video src='/v/other.avi'></video>"
                    "<video src='/v/broken.mp4'></video>"
                    "<a href='/dl/movies.zip'>all</a>"
                    "<img src='/anim.gif'><img src='/anim.webp'>"
                ),
                "/anim.gif": video(animation, "image/gif"),
                "/anim.webp": video(animated_webp, "image/webp"),
                "/dl/movies.zip": video(pack, "application/zip"),
                "/v/clip.mp4": video(clip, "video/mp4"),
                "/v/copy.mkv": video(copy, "video/x-matroska"),
                "/dl/17.mkv": video(listed_video, "application/octet-stream"),
                "/v/other.avi": video(unrelated, "video/x-msvideo"),
                "/v/broken.mp4": video(broken, "video/mp4"),
            }
        )
        crawl = run_cli(["crawl", site.url("/"), "--allow-private-networks", "--json"], env)
        assert crawl.returncode == 0, crawl.stderr
        assert "Traceback" not in crawl.stderr
        summary = json.loads(crawl.stdout)
        hits = ok_json(["hits", "list"], env)
        reviews = ok_json(["review", "list"], env)
        url = site.url
    picture = _sha(refs / "known.png")[:16]  # the id hashes build gives an image
    found = {
        (h["url"], h["list"], h["entry"], h["media_type"], h["file_type"], h["frame_times"])
        for h in hits
    }
    assert found == {
        (url("/v/clip.mp4"), "pics", picture, "video", "mp4", "3,4"),
        (url("/v/copy.mkv"), "pics", picture, "video", "mkv", "3,4"),
        (url("/dl/17.mkv"), "videos", "vpdq:vid-17", "video", "mkv", "0,1,2,3,4"),
        (url("/v/broken.mp4"), "files", "b1", "video", "mp4", ""),
        (url("/dl/movies.zip"), "pics", picture, "archive_member", "mp4", "3,4"),
        (url("/anim.gif"), "pics", picture, "image", "gif", "6.6"),
        (url("/anim.webp"), "pics", picture, "image", "webp", "6.6"),
    }
    member = next(h for h in hits if h["media_type"] == "archive_member")
    assert (member["member"], member["container_sha256"]) == (
        "movies/clip.mp4",
        hashlib.sha256(pack).hexdigest(),
    )
    by_url = {h["url"]: h for h in hits if h["media_type"] == "video"}
    assert by_url[url("/dl/17.mkv")]["frame_share"] == "100"
    assert by_url[url("/dl/17.mkv")]["frames_matched"] == 5
    assert by_url[url("/v/clip.mp4")]["distance"] <= 31
    assert reviews == []
    run = ok_json(["runs", "show", summary["crawl"]], env)
    stats = run["crawl_stats"]
    assert stats["crawl/files/video"] == 5
    # mp4, mkv copy, listed mkv, avi, zipped clip, GIF and WebP (7 s and the cut at 6.6 s)
    assert stats["crawl/video/frames"] == 8 + 8 + 5 + 4 + 8 + 8 + 8
    assert stats["crawl/video/decode_error/corrupt"] == 1
    served = [clip, copy, listed_video, unrelated, broken, pack, animation, animated_webp]
    # Decoded frames as pictures (RGB) and as the luma planes hashing works on.
    frames = [
        pixels.tobytes()
        for data in served[:4]
        for pixel_format in ("rgb24", "gray")
        for _, pixels in _frames(data, pixel_format)
    ]
    needles = served + frames
    assert _leaks(WindowFinder(needles), env, tmp_path, crawl.stdout, crawl.stderr) == []


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
