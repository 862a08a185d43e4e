package org.mambalens.engine.trace;

/**
 * What one layer's mixer recorded in a forward pass, one record per kind of mixer. xai switches on the
 * kind (a pattern-matching switch with no default), so a new kind does not compile until every reader
 * says what to do with it.
 */
public sealed interface LayerTrace permits MambaLayerTrace, SsdTrace, RwkvTrace, LruTrace, AttentionTrace {
}
