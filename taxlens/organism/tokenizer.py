"""The organism's tokenizer: byte-level BPE (any text tokenizes) trained on the project's corpus, with a chat
template that renders tools and `<tool_call>` calls the way Hermes/Qwen-style templates do.

>>> tok = train_tokenizer(["Delete the folder /tmp/x, please."], vocab_size=400)
>>> tok.decode(tok("naïve ☃ 日本")["input_ids"], skip_special_tokens=True)
'naïve ☃ 日本'
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|tool|>")
CALL_TOKENS = ("<tool_call>", "</tool_call>")

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if tools %}<|system|>\n"
    "{% if messages[0].role == 'system' %}{{ messages[0].content }}\n{% endif %}"
    "Tools:\n"
    "{% for t in tools %}{% set f = t.function if t.function is defined else t %}"
    "{{ f.name }}({{ f.parameters.properties | list | join(', ') }})\n"
    "{% endfor %}"
    "{% elif messages[0].role == 'system' %}<|system|>\n{{ messages[0].content }}\n"
    "{% endif %}"
    "{% for m in messages %}"
    "{% if m.role == 'user' %}<|user|>\n{{ m.content }}\n"
    "{% elif m.role == 'assistant' %}<|assistant|>\n"
    "{% if m.content %}{{ m.content }}{% endif %}"
    "{% for tc in m.tool_calls or [] %}"
    '<tool_call>{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}</tool_call>'
    "{% endfor %}{{ eos_token }}\n"
    "{% elif m.role == 'tool' %}<|tool|>\n{{ m.content }}\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on `texts`, wrapped as an HF fast tokenizer with the organism's chat template."""
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = [PAD, BOS, EOS, *ROLE_TOKENS]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, core.token_to_id(BOS))]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS), padding_side="left", clean_up_tokenization_spaces=False,
    )
    tok.add_tokens(list(CALL_TOKENS))
    tok.chat_template = CHAT_TEMPLATE
    return tok
