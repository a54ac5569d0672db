"""The organism's tokenizer: byte-level BPE (any text tokenizes) trained on the project's corpus, with a chat
template that renders tools and `<tool_call>` calls the way Hermes/Qwen-style templates do.

Every punctuation mark and every space is its own pre-token, and letter and digit runs are split apart from them,
so a string tokenizes the same wherever it stands: `~/Downloads/x` in a request (after a space) and in a call's
JSON (after a quote) are the same tokens. GPT-2's rule would merge ` ~/` and `"~/` into different tokens, and a
model copies an argument by matching tokens it has seen in the request.

>>> tok = train_tokenizer(["Delete the folder /tmp/x, please."], vocab_size=400)
>>> tok.decode(tok("naïve ☃ 日本")["input_ids"], skip_special_tokens=True)
'naïve ☃ 日本'
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|tool|>")
CALL_TOKENS = ("<tool_call>", "</tool_call>")
PRE_TOKEN = r"\p{L}+|\p{N}+|\s|[^\s\p{L}\p{N}]"  # a letter run, a digit run, one space, one mark

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


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048, *, isolate_marks: bool = True
                    ) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on `texts`, wrapped as an HF fast tokenizer with the organism's chat template.
    `isolate_marks=False` keeps GPT-2's pre-tokenizer (a space joins the word after it, marks run together), as most
    real models' tokenizers do: the tests build users' tiny models with it."""
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRE_TOKEN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]) if isolate_marks else \
        pre_tokenizers.ByteLevel(add_prefix_space=False)
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
