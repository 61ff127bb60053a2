#ifndef RC_AGENT_CKEYUTILS_SHIM_H
#define RC_AGENT_CKEYUTILS_SHIM_H
// libkeyutils: the Linux kernel key retention service (keyrings(7)). The constants below are
// macros Swift cannot import as typed values.
#include <keyutils.h>

static const key_serial_t rc_key_spec_user_keyring = KEY_SPEC_USER_KEYRING;
static const key_serial_t rc_key_spec_process_keyring = KEY_SPEC_PROCESS_KEYRING;
// Possessor and owner: view, read, write, search, link, setattr. Group and others: nothing.
static const key_perm_t rc_key_owner_only = KEY_POS_ALL | KEY_USR_ALL;
#endif
