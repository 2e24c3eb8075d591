/* Placeholder until the shim lands: the library loads and exports nothing. */
