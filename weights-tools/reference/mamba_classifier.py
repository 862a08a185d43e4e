"""MambaForSequenceClassification as MambaLens reads it: transformers' MambaModel under `backbone.*` and a
bias-free `score` [num_labels, hidden] applied to the final-norm hidden state of the last non-pad token.

transformers has no such class; this plain-PyTorch module is the reference the golden tests and the
trained topic classifier are checked against. The read position follows GPTNeoXForSequenceClassification:
the right-most token that is not `pad_token_id` (position 0 when every token is a pad).
"""
import torch
from transformers import MambaModel


def last_non_pad(ids, pad_token_id):
    """[B] index of the right-most non-pad token of each row of ids [B, T]."""
    positions = torch.arange(ids.shape[1], device=ids.device)
    return (positions * (ids != pad_token_id)).argmax(-1)


class MambaForSequenceClassification(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.backbone = MambaModel(config)
        self.score = torch.nn.Linear(config.hidden_size, config.num_labels, bias=False)

    def forward(self, ids):                                   # ids [B, T] -> logits [B, num_labels]
        hidden = self.backbone(ids, use_cache=False).last_hidden_state   # [B, T, D], after norm_f
        last = last_non_pad(ids, self.config.pad_token_id)
        return self.score(hidden[torch.arange(ids.shape[0], device=ids.device), last])
