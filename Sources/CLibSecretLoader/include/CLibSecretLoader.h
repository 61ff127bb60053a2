#ifndef RC_AGENT_CLIBSECRET_LOADER_H
#define RC_AGENT_CLIBSECRET_LOADER_H

/// Loads libsecret (and with it GLib, GObject and GIO) the first time the keyring is used rather
/// than at every start of every command. Returns 1 when it is loaded; 0 when it cannot be, with a
/// static description of why in *reason (the dynamic loader's message). Safe from any thread.
int rc_libsecret_load(const char **reason);

#endif
