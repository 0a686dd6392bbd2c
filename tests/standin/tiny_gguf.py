#!/usr/bin/env python3
"""Writes a tiny llama-architecture GGUF model with random weights, for the end-to-end test
that serves a real llama.cpp `llama-server` (tests/llama.rs).

    python tiny_gguf.py OUT.gguf

Two layers, embedding 64, four heads, feed-forward 128, context 256, float32: it loads and
generates in milliseconds on any CPU. The vocabulary is a SentencePiece (`llama`) one that
llama.cpp accepts: <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, then the letters,
digits and punctuation and some words with every prefix of each (so text tokenizes into
pieces, not bytes). A chat template in `tokenizer.chat_template` makes
/v1/chat/completions work.

The weights are random (seeded: the same file every time) and the answers are nonsense,
with one rule built in so that every answer is visible text: one dimension of the residual
stream is a constant (every embedding has it, no layer writes to it), and the output layer
gives the special and byte tokens a large negative weight on it. So the model never ends an
answer early with </s> and never emits a lone byte that is not UTF-8; an answer runs to its
token limit in ordinary word pieces.

Needs the `gguf` and `numpy` packages (scripts/llama-server.sh puts both in its venv).
"""

import sys

import gguf
import numpy as np

SEED = 13
CONTEXT = 256
EMBED = 64
HEADS = 4
FEED_FORWARD = 128
LAYERS = 2

# A ChatML-free template on purpose: plain role prefixes, nothing llama.cpp would read as a
# known model family's tool-call syntax.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- message['role'] + ': ' + message['content'] + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'assistant: ' -}}{%- endif -%}"
)

WORDS = """
hello world the a an of to and in is it that was for on are with as be at by this have from
or one had not but what all were when we there can your which their said if do will each
about how up out them then she many some so these would other into has more her two like him
see time could no make than first been its who now people my made over did down only way
find use may water long little very after words called just where most know model token
tiny random weight server test answer llama reagent stream chat local
""".split()


def vocabulary():
    """The tokens, their scores and their types, in id order."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        types.append(gguf.TokenType.BYTE)
    pieces = []
    seen = set()

    def piece(text):
        if text not in seen:
            seen.add(text)
            pieces.append(text)

    # Single characters first: the SentencePiece merge starts from them.
    for char in "\u2581abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?:;'-":
        piece(char)
    # Every prefix of each word (with its leading space, `▁`), so merges can reach it.
    for word in WORDS:
        text = "\u2581" + word
        for end in range(2, len(text) + 1):
            piece(text[:end])
    tokens.extend(pieces)
    types.extend([gguf.TokenType.NORMAL] * len(pieces))
    # Longer pieces score higher, so they win a merge.
    scores = [0.0] * (3 + 256) + [-100.0 + len(p) for p in pieces]
    return tokens, scores, types


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tiny_gguf.py OUT.gguf")
    out = sys.argv[1]
    rng = np.random.default_rng(SEED)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)
    visible = np.array([t == gguf.TokenType.NORMAL for t in types])

    def normal(*shape, std=0.5):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    writer = gguf.GGUFWriter(out, "llama")
    writer.add_name("reagent tiny test model")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBED)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(EMBED // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(True)
    writer.add_chat_template(CHAT_TEMPLATE)

    # Dimension 0 of the residual stream is a constant 4 (see the module's doc): every
    # embedding has it, and no layer's output projection writes to it.
    embeddings = normal(n_vocab, EMBED)
    embeddings[:, 0] = 4.0
    # Numpy shapes are (out, in), as torch's Linear; GGUF stores them reversed, as ggml wants.
    writer.add_tensor("token_embd.weight", embeddings)
    for layer in range(LAYERS):
        block = f"blk.{layer}"
        attn_out = normal(EMBED, EMBED, std=0.1)
        attn_out[0, :] = 0.0
        down = normal(EMBED, FEED_FORWARD, std=0.1)
        down[0, :] = 0.0
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(EMBED, dtype=np.float32))
        writer.add_tensor(f"{block}.attn_q.weight", normal(EMBED, EMBED, std=0.1))
        writer.add_tensor(f"{block}.attn_k.weight", normal(EMBED, EMBED, std=0.1))
        writer.add_tensor(f"{block}.attn_v.weight", normal(EMBED, EMBED, std=0.1))
        writer.add_tensor(f"{block}.attn_output.weight", attn_out)
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(EMBED, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", normal(FEED_FORWARD, EMBED, std=0.1))
        writer.add_tensor(f"{block}.ffn_up.weight", normal(FEED_FORWARD, EMBED, std=0.1))
        writer.add_tensor(f"{block}.ffn_down.weight", down)
    writer.add_tensor("output_norm.weight", np.ones(EMBED, dtype=np.float32))
    # The constant dimension is always positive after the norm: a large negative weight on
    # it keeps the special and byte tokens far below every word piece.
    output = normal(n_vocab, EMBED, std=1.0)
    output[:, 0] = np.where(visible, 0.0, -50.0)
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
