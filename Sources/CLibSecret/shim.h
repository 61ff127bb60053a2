#ifndef RC_AGENT_CLIBSECRET_SHIM_H
#define RC_AGENT_CLIBSECRET_SHIM_H
// Small helpers so Swift never calls a variadic C function, a function-like macro, or juggles
// GHashTable/GList ownership by hand. Everything else is called directly from Swift.
#include <string.h>
// The D-Bus-path API (secret-paths.h) is marked "subject to change" but has not changed since
// libsecret 0.18; search needs it to skip items deleted mid-search instead of failing.
#define SECRET_API_SUBJECT_TO_CHANGE 1
#include <libsecret/secret.h>

// The schema of rc-agent's keyring items. DONT_MATCH_NAME: searches match on the attributes
// only and return other programs' items with the same attributes too; LibSecretStore keeps only
// those whose xdg:schema is this one (it must see the others to leave them alone).
static inline const SecretSchema *rc_secret_schema(void) {
    static const SecretSchema schema = {
        "com.logicgate.rc-agent.Credentials",
        SECRET_SCHEMA_DONT_MATCH_NAME,
        {
            { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
            { "profile", SECRET_SCHEMA_ATTRIBUTE_STRING },
            { "client_id", SECRET_SCHEMA_ATTRIBUTE_STRING },
            { "url", SECRET_SCHEMA_ATTRIBUTE_STRING },
            { "created", SECRET_SCHEMA_ATTRIBUTE_STRING },
            { NULL, 0 },
        },
        0, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    };
    return &schema;
}

/// A string→string table owning copies of its keys and values (libsecret's attribute table).
static inline GHashTable *rc_attributes_new(void) {
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

static inline void rc_attributes_set(GHashTable *table, const char *key, const char *value) {
    g_hash_table_replace(table, g_strdup(key), g_strdup(value));
}

/// The value for `key`, borrowed from the table (NULL when absent).
static inline const char *rc_attributes_get(GHashTable *table, const char *key) {
    return (const char *)g_hash_table_lookup(table, key);
}

/// A text/plain secret value holding a copy of `bytes`; the copy is wiped when the value is freed.
static inline SecretValue *rc_secret_value_new_text(const char *bytes, gsize length) {
    gchar *copy = (gchar *)g_malloc(length + 1);
    memcpy(copy, bytes, length);
    copy[length] = '\0';
    // secret_password_free zeroes the (NUL-terminated) buffer before freeing it.
    return secret_value_new_full(copy, (gssize)length, "text/plain", (GDestroyNotify)secret_password_free);
}

/// Frees a GList of GObjects (what secret_service_search_sync returns).
static inline void rc_object_list_free(GList *list) {
    g_list_free_full(list, g_object_unref);
}

// Error domains are macros over functions; name them once here.
static inline GQuark rc_secret_error_domain(void) { return SECRET_ERROR; }
static inline GQuark rc_io_error_domain(void) { return G_IO_ERROR; }
static inline GQuark rc_dbus_error_domain(void) { return G_DBUS_ERROR; }

// Desktop notifications: org.freedesktop.Notifications on the session bus, through the GDBus
// that libsecret already links (g_variant_new is variadic, so the call is built here).
// Returns 1 when the notification was delivered, 0 when no notification service is on the bus
// (not an error: servers have none), -1 with *error set when the call failed.
static inline int rc_desktop_notify(const char *app, const char *summary, const char *body,
                                    int timeout_ms, GError **error) {
    GDBusConnection *bus = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, error);
    if (bus == NULL) return -1;
    GVariant *owner = g_dbus_connection_call_sync(
        bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
        g_variant_new("(s)", "org.freedesktop.Notifications"), G_VARIANT_TYPE("(b)"),
        G_DBUS_CALL_FLAGS_NONE, timeout_ms, NULL, error);
    if (owner == NULL) { g_object_unref(bus); return -1; }
    gboolean present = FALSE;
    g_variant_get(owner, "(b)", &present);
    g_variant_unref(owner);
    if (!present) { g_object_unref(bus); return 0; }
    GVariant *reply = g_dbus_connection_call_sync(
        bus, "org.freedesktop.Notifications", "/org/freedesktop/Notifications",
        "org.freedesktop.Notifications", "Notify",
        g_variant_new("(susssasa{sv}i)", app, 0, "dialog-password", summary, body, NULL, NULL, -1),
        G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, timeout_ms, NULL, error);
    g_object_unref(bus);
    if (reply == NULL) return -1;
    g_variant_unref(reply);
    return 1;
}

// 1 when `name` has an owner on the session bus, 0 when not, -1 when the bus cannot be asked.
// The unlock prompt uses it to tell a cancelled prompt from one that could not be shown.
static inline int rc_bus_name_has_owner(const char *name, int timeout_ms) {
    GDBusConnection *bus = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, NULL);
    if (bus == NULL) return -1;
    GVariant *reply = g_dbus_connection_call_sync(
        bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
        g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE, timeout_ms, NULL, NULL);
    g_object_unref(bus);
    if (reply == NULL) return -1;
    gboolean present = FALSE;
    g_variant_get(reply, "(b)", &present);
    g_variant_unref(reply);
    return present ? 1 : 0;
}

#endif
