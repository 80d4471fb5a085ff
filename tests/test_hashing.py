"""One folder hash for every caller; the published digests stay byte-identical.

The expected values below were computed by the four separate implementations this module replaced
(hashing.folder_digest, eval.folders.folder_content_hash, eval.model.folder_identity,
merge.package.file_hashes, as of commit f0d0f03) on the same folder; they are in locks, cards,
eval results and cache keys, so they must never change.
"""

import hashlib
from pathlib import Path

import pytest

from zoo.errors import UserError
from zoo.eval.folders import folder_content_hash
from zoo.eval.model import folder_identity
from zoo.hashing import digest_sha256, folder_digest, git_blob_id, sha256_file
from zoo.merge.package import file_hashes

FILES = {
    "README.md": b"card\n",
    "config.json": b'{"a": 1}\n',
    "model.safetensors": b"\x00\x01weights",
    "1_Pooling/config.json": b"{}\n",
    ".gitattributes": b"*.safetensors filter=lfs\n",
    ".cache/huggingface/download/x.metadata": b"meta\n",
    ".git/HEAD": b"ref\n",
    "sub/.hidden": b"h\n",
    "sub/README.md": b"nested\n",
}
SHA = {
    ".cache/huggingface/download/x.metadata": (
        "5e9edff45b28487de8e252b4c1d4e33fe897256abb6b00a2d68bd6edacef3c86"
    ),
    ".git/HEAD": "8e7bcfe346d629838334cc1e33ca1fc384e9abd03e83113da410a8695813a985",
    ".gitattributes": "63e78845349a266f30480b3f1667a234f4d71395252af79960cbf019fdde36d3",
    "1_Pooling/config.json": "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356",
    "README.md": "ee5a8aebf57ef226f9b73e086350e212d563474aca1576db0f4960021004664f",
    "config.json": "e8c628edc9968ef0c668f54e0ba2636b35503357eb1aca0ddc828aeace432f67",
    "model.safetensors": "1452ccce69d298ac2f5c57ec20bb9f6280cafe2ea5c572f985af21071aaf1483",
    "sub/.hidden": "91ee5e9f42ba3d34e414443b36a27b797a56a47aad6bb1e4c1769e69c77ce0ca",
    "sub/README.md": "370a8c04b8a65bb4494275eec227f1b694db04c76da6b0b8ae88ed1ab19790a3",
}
TASK_FOLDER_HASH = "26e9dd92ffa6563fa72988371e85ae83ac8d3d55b9777a346095480f44412203"
MODEL_IDENTITY = "41954b974a5c79b90d3fe530b2d9a6925e8c37fa368d7ac36db69ea56914d819"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for rel, data in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    return tmp_path


def test_file_hashes_are_sha256_and_git_blob_ids(folder):
    path = folder / "model.safetensors"
    assert sha256_file(path) == hashlib.sha256(FILES["model.safetensors"]).hexdigest()
    assert sha256_file(path) == SHA["model.safetensors"]
    blob = b"blob %d\0" % len(FILES["model.safetensors"]) + FILES["model.safetensors"]
    assert git_blob_id(path) == hashlib.sha1(blob).hexdigest()


def test_lock_digest_keeps_repo_files_and_skips_only_the_download_cache(folder):
    expected = {k: v for k, v in SHA.items() if not k.startswith(".cache/")}
    digest = folder_digest(folder)
    assert digest == expected
    assert list(digest) == sorted(digest)


def test_merge_output_hashes_count_every_file_and_trust_known_ones(folder):
    assert file_hashes(folder) == SHA
    assert file_hashes(folder, {"model.safetensors": "k"}) == {**SHA, "model.safetensors": "k"}


def test_task_folder_hash_skips_hidden_files(folder):
    assert folder_content_hash(folder) == TASK_FOLDER_HASH
    visible = {k: v for k, v in SHA.items() if not any(p.startswith(".") for p in k.split("/"))}
    assert digest_sha256(visible) == TASK_FOLDER_HASH
    (folder / ".DS_Store").write_bytes(b"finder")
    assert folder_content_hash(folder) == TASK_FOLDER_HASH
    (folder / "sub" / "README.md").write_bytes(b"edited\n")
    assert folder_content_hash(folder) != TASK_FOLDER_HASH


def test_model_identity_skips_hidden_files_and_the_card(folder):
    assert folder_identity(folder) == MODEL_IDENTITY
    (folder / "README.md").write_text("a new card\n")
    assert folder_identity(folder) == MODEL_IDENTITY
    (folder / "config.json").write_text("{}\n")
    assert folder_identity(folder) != MODEL_IDENTITY


def test_model_identity_of_a_folder_with_only_a_card_is_an_error(tmp_path):
    (tmp_path / "README.md").write_text("card\n")
    with pytest.raises(UserError, match="empty model folder"):
        folder_identity(tmp_path)
