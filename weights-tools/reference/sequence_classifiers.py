"""The sequence classifiers MambaLens reads that transformers has no class for: a family's backbone model (transformers'
own, under the prefix its causal LM uses) and a bias-free `score` [num_labels, hidden] applied to the final-norm hidden
state of the last non-pad token.

  MambaForSequenceClassification           MambaModel under `backbone.*`
  Mamba2ForSequenceClassification          Mamba2Model under `backbone.*`
  RwkvForSequenceClassification            RwkvModel under `rwkv.*`
  RecurrentGemmaForSequenceClassification  RecurrentGemmaModel under `model.*` (no soft cap: that belongs to the LM head)

These plain-PyTorch modules are the references the golden tests and the trained classifiers are checked against. The read
position follows GPTNeoXForSequenceClassification: the right-most token that is not `pad_token_id` (position 0 when every
token is a pad). RWKV's WKV is transformers' PyTorch recurrence on every device (see `_wkv_in_pytorch`).
"""
import torch
import transformers
from transformers.models.rwkv import modeling_rwkv


def last_non_pad(ids, pad_token_id):
    """[B] index of the right-most non-pad token of each row of ids [B, T]."""
    positions = torch.arange(ids.shape[1], device=ids.device)
    return (positions * (ids != pad_token_id)).argmax(-1)


def _wkv_in_pytorch():
    """Keeps RWKV on transformers' own WKV recurrence (rwkv_linear_attention_cpu, which runs on any device): its CUDA
    kernel would otherwise be built at the first model's construction (ninja and nvcc) or fetched from the Hub, neither
    of which a reference run should depend on."""
    modeling_rwkv.load_wkv_cuda_kernel = lambda context_length: None
    modeling_rwkv.rwkv_cuda_kernel = None


_wkv_in_pytorch()


class SequenceClassifier(torch.nn.Module):
    """A backbone (`backbone_class` under the attribute `prefix`) and the score head; subclasses name the two."""
    backbone_class, prefix = None, None

    def __init__(self, config):
        super().__init__()
        self.config = config
        setattr(self, self.prefix, getattr(transformers, self.backbone_class)(config))
        self.score = torch.nn.Linear(config.hidden_size, config.num_labels, bias=False)

    def backbone_outputs(self, ids, **kwargs):
        """The backbone's output for ids [B, T] (last_hidden_state: after the final norm), without a cache."""
        return getattr(self, self.prefix)(ids, use_cache=False, **kwargs)

    def forward(self, ids):                                   # ids [B, T] -> logits [B, num_labels]
        hidden = self.backbone_outputs(ids).last_hidden_state
        last = last_non_pad(ids, self.config.pad_token_id)
        return self.score(hidden[torch.arange(ids.shape[0], device=ids.device), last])


class MambaForSequenceClassification(SequenceClassifier):
    backbone_class, prefix = "MambaModel", "backbone"


class Mamba2ForSequenceClassification(SequenceClassifier):
    backbone_class, prefix = "Mamba2Model", "backbone"


class RwkvForSequenceClassification(SequenceClassifier):
    backbone_class, prefix = "RwkvModel", "rwkv"


class RecurrentGemmaForSequenceClassification(SequenceClassifier):
    backbone_class, prefix = "RecurrentGemmaModel", "model"


CLASSIFIERS = {c.__name__: c for c in (MambaForSequenceClassification, Mamba2ForSequenceClassification,
                                        RwkvForSequenceClassification, RecurrentGemmaForSequenceClassification)}
