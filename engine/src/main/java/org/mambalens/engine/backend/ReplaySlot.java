package org.mambalens.engine.backend;

/**
 * Where {@link Backend#replay} keeps one recurring piece of work between calls (on a GPU: whether it
 * has run once, and its captured graph). A decoding state owns one; the model's backend fills it.
 */
public final class ReplaySlot {
    private Object held;

    /** What the backend left here last time, or null. */
    public Object held() {
        return held;
    }

    public void hold(Object what) {
        held = what;
    }
}
