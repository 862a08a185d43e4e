package org.mambalens.spark;

import java.io.Serializable;

/**
 * One item's row: its result as JSON (what {@link org.mambalens.xai.eval.DatasetJob#item} gave) or the error
 * that stopped it, how long it took and where it ran.
 *
 * @param loadSeconds model loading that this item waited for on its executor (non-zero for one item per executor JVM)
 */
record ItemOutcome(int item, String result, String error, double seconds, double loadSeconds, String executor) implements Serializable {
    boolean ok() {
        return error == null;
    }
}
