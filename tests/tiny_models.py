"""Tiny transformers models with random weights, saved to a directory the way a real local
model is, so the tests load them through the registry's real loading code.

A byte-level BPE tokenizer is trained on a few sentences (milliseconds); GPT-2 and BERT
configs are a few thousand parameters wide. Seeds are fixed: the same model every time.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a small model answers every question with a short sentence",
    "graphs, runs and sessions live on the platform",
    "hello world, how are you today?",
] * 4

LABELS = {0: "calm", 1: "busy", 2: "other"}


def _tokenizer(special: dict[str, str]):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1, special_tokens=list(special.values()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, **special)


def save_tiny_gpt2(path: Path, *, n_positions: int = 96) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tokenizer = _tokenizer({"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"})
    # no end-of-sequence id in the config: every run generates exactly max_new_tokens, so
    # token counts are known in advance (the tokenizer still has the token, for padding)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=None,
        eos_token_id=None,
    )
    model = GPT2LMHeadModel(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_tiny_bert_classifier(path: Path, *, max_position_embeddings: int = 64) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = _tokenizer(
        {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    )
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_position_embeddings,
        num_labels=len(LABELS),
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
        pad_token_id=tokenizer.pad_token_id,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
