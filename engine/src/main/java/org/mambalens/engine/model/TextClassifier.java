package org.mambalens.engine.model;

import java.util.Arrays;
import java.util.List;

/**
 * A text classifier: a language model whose head scores labels instead of tokens ({@code score.weight}
 * [num_labels, D]), read at one position — by default the last token that is not a pad, as transformers'
 * {@code …ForSequenceClassification} reads it. The model stays a {@link LanguageModel}, so traces,
 * attention maps and the reverse pass (with a label as the output) work on it unchanged.
 */
public final class TextClassifier implements AutoCloseable {
    private final LanguageModel model;
    private final SequenceClassification head;

    TextClassifier(LanguageModel model, SequenceClassification head) {
        this.model = model;
        this.head = head;
    }

    /** The underlying model: {@code forward} gives label logits [L, labels] for every position. */
    public LanguageModel model() {
        return model;
    }

    public List<String> labels() {
        return head.labels();
    }

    public int padTokenId() {
        return head.padTokenId();
    }

    /** The position the label is read at: the last id that is not the pad token (0 when all are pads). */
    public int readPosition(int[] ids) {
        return head.readPosition(ids);
    }

    /** Label logits [labels] of {@code ids}, read at {@link #readPosition}. */
    public float[] logits(int[] ids) {
        LanguageModel.checkIds(ids, model.vocabSize());
        return logitsAt(ids, readPosition(ids));
    }

    /** Label logits [labels] read at {@code position} (the perturbation tests keep the text's own position). */
    public float[] logitsAt(int[] ids, int position) {
        if (position < 0 || position >= ids.length) throw new IllegalArgumentException("position " + position + " is outside the text [0, " + ids.length + ")");
        int C = labels().size();
        return Arrays.copyOfRange(model.forward(ids, null), position * C, (position + 1) * C);
    }

    /** The index of a label given by name (as id2label spells it) or by index. */
    public int label(String nameOrIndex) {
        int k = labels().indexOf(nameOrIndex);
        if (k >= 0) return k;
        try {
            k = Integer.parseInt(nameOrIndex.strip());
        } catch (NumberFormatException e) {
            k = -1;
        }
        if (k < 0 || k >= labels().size()) throw new IllegalArgumentException("label \"" + nameOrIndex + "\" is not one of " + labels() + " (or an index below " + labels().size() + ")");
        return k;
    }

    @Override
    public void close() {
        model.close();
    }

    @Override
    public String toString() {
        return model + ", labels " + labels();
    }
}
