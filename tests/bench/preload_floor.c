/* An empty shared object: what preloading any library at all costs, the floor for the front. */
int awfshim_preload_floor(void) { return 0; }
