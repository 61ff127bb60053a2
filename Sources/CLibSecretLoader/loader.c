// libsecret, GLib, GObject and GIO are about a dozen shared libraries with thousands of symbols to
// bind and type registrations to run: about 2 ms of every process start, `rc-agent token` and
// `--version` included, although only the keyring backend and desktop notifications use them.
// The release binary does not name them as needed libraries (scripts/package.sh removes them);
// these definitions of the functions rc-agent calls load libsecret on first use and forward to it.
// Where the libraries are linked (debug and test builds), the same code finds them loaded.
#define _GNU_SOURCE
#include "CLibSecretLoader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_API_SUBJECT_TO_CHANGE 1
#include <libsecret/secret.h>

// Every function rc-agent calls, with its parameters and the arguments that forward them.
#define RC_FUNCTIONS(FUNCTION, PROCEDURE) \
    PROCEDURE(g_free, (gpointer mem), (mem)) \
    FUNCTION(gpointer, g_malloc, (gsize n_bytes), (n_bytes)) \
    FUNCTION(gchar *, g_strdup, (const gchar *str), (str)) \
    PROCEDURE(g_strfreev, (gchar **str_array), (str_array)) \
    PROCEDURE(g_error_free, (GError *error), (error)) \
    FUNCTION(guint, g_str_hash, (gconstpointer v), (v)) \
    FUNCTION(gboolean, g_str_equal, (gconstpointer v1, gconstpointer v2), (v1, v2)) \
    FUNCTION(GHashTable *, g_hash_table_new_full, (GHashFunc hash_func, GEqualFunc key_equal_func, GDestroyNotify key_destroy_func, GDestroyNotify value_destroy_func), (hash_func, key_equal_func, key_destroy_func, value_destroy_func)) \
    FUNCTION(gboolean, g_hash_table_replace, (GHashTable *hash_table, gpointer key, gpointer value), (hash_table, key, value)) \
    FUNCTION(gpointer, g_hash_table_lookup, (GHashTable *hash_table, gconstpointer key), (hash_table, key)) \
    PROCEDURE(g_hash_table_unref, (GHashTable *hash_table), (hash_table)) \
    FUNCTION(gboolean, g_main_context_iteration, (GMainContext *context, gboolean may_block), (context, may_block)) \
    FUNCTION(const GVariantType *, g_variant_type_checked_, (const gchar *type_string), (type_string)) \
    PROCEDURE(g_variant_unref, (GVariant *value), (value)) \
    FUNCTION(gpointer, g_object_ref, (gpointer object), (object)) \
    PROCEDURE(g_object_unref, (gpointer object), (object)) \
    FUNCTION(GCancellable *, g_cancellable_new, (void), ()) \
    PROCEDURE(g_cancellable_cancel, (GCancellable *cancellable), (cancellable)) \
    FUNCTION(GQuark, g_io_error_quark, (void), ()) \
    FUNCTION(GQuark, g_dbus_error_quark, (void), ()) \
    FUNCTION(gboolean, g_dbus_error_strip_remote_error, (GError *error), (error)) \
    FUNCTION(GDBusConnection *, g_bus_get_sync, (GBusType bus_type, GCancellable *cancellable, GError **error), (bus_type, cancellable, error)) \
    FUNCTION(GVariant *, g_dbus_connection_call_sync, (GDBusConnection *connection, const gchar *bus_name, const gchar *object_path, const gchar *interface_name, const gchar *method_name, GVariant *parameters, const GVariantType *reply_type, GDBusCallFlags flags, gint timeout_msec, GCancellable *cancellable, GError **error), (connection, bus_name, object_path, interface_name, method_name, parameters, reply_type, flags, timeout_msec, cancellable, error)) \
    FUNCTION(GQuark, secret_error_get_quark, (void), ()) \
    PROCEDURE(secret_password_free, (gchar *password), (password)) \
    FUNCTION(SecretValue *, secret_value_new_full, (gchar *secret, gssize length, const gchar *content_type, GDestroyNotify destroy), (secret, length, content_type, destroy)) \
    FUNCTION(const gchar *, secret_value_get, (SecretValue *value, gsize *length), (value, length)) \
    PROCEDURE(secret_value_unref, (gpointer value), (value)) \
    FUNCTION(SecretService *, secret_service_get_sync, (SecretServiceFlags flags, GCancellable *cancellable, GError **error), (flags, cancellable, error)) \
    PROCEDURE(secret_service_disconnect, (void), ()) \
    FUNCTION(gchar *, secret_service_read_alias_dbus_path_sync, (SecretService *self, const gchar *alias, GCancellable *cancellable, GError **error), (self, alias, cancellable, error)) \
    FUNCTION(gboolean, secret_service_search_for_dbus_paths_sync, (SecretService *self, const SecretSchema *schema, GHashTable *attributes, GCancellable *cancellable, gchar ***unlocked, gchar ***locked, GError **error), (self, schema, attributes, cancellable, unlocked, locked, error)) \
    FUNCTION(gboolean, secret_service_store_sync, (SecretService *service, const SecretSchema *schema, GHashTable *attributes, const gchar *collection, const gchar *label, SecretValue *value, GCancellable *cancellable, GError **error), (service, schema, attributes, collection, label, value, cancellable, error)) \
    FUNCTION(gint, secret_service_unlock_dbus_paths_sync, (SecretService *self, const gchar **paths, GCancellable *cancellable, gchar ***unlocked, GError **error), (self, paths, cancellable, unlocked, error)) \
    FUNCTION(SecretCollection *, secret_collection_create_sync, (SecretService *service, const gchar *label, const gchar *alias, SecretCollectionCreateFlags flags, GCancellable *cancellable, GError **error), (service, label, alias, flags, cancellable, error)) \
    FUNCTION(SecretCollection *, secret_collection_for_alias_sync, (SecretService *service, const gchar *alias, SecretCollectionFlags flags, GCancellable *cancellable, GError **error), (service, alias, flags, cancellable, error)) \
    FUNCTION(gboolean, secret_collection_get_locked, (SecretCollection *self), (self)) \
    FUNCTION(SecretItem *, secret_item_new_for_dbus_path_sync, (SecretService *service, const gchar *item_path, SecretItemFlags flags, GCancellable *cancellable, GError **error), (service, item_path, flags, cancellable, error)) \
    FUNCTION(gboolean, secret_item_load_secret_sync, (SecretItem *self, GCancellable *cancellable, GError **error), (self, cancellable, error)) \
    FUNCTION(SecretValue *, secret_item_get_secret, (SecretItem *self), (self)) \
    FUNCTION(GHashTable *, secret_item_get_attributes, (SecretItem *self), (self)) \
    FUNCTION(gboolean, secret_item_get_locked, (SecretItem *self), (self)) \
    FUNCTION(guint64, secret_item_get_created, (SecretItem *self), (self)) \
    FUNCTION(guint64, secret_item_get_modified, (SecretItem *self), (self)) \
    FUNCTION(gboolean, secret_item_delete_sync, (SecretItem *self, GCancellable *cancellable, GError **error), (self, cancellable, error))

// What the variadic forwarders call.
#define RC_VARIADIC_TARGETS(TARGET) TARGET(g_variant_new_va) TARGET(g_variant_get_va) TARGET(g_variant_get_data)

#define RC_NAME(type, name, parameters, arguments) #name,
#define RC_PROCEDURE_NAME(name, parameters, arguments) #name,
#define RC_TARGET_NAME(name) #name,
static const char *const required[] = {RC_FUNCTIONS(RC_NAME, RC_PROCEDURE_NAME) RC_VARIADIC_TARGETS(RC_TARGET_NAME)};

static void *library;
static char failure[512];
static pthread_once_t loaded = PTHREAD_ONCE_INIT;

// Loaded only with every function rc-agent calls: an older or partial libsecret is reported as a
// keyring that cannot be used, not found missing in the middle of a keyring call.
static void load(void) {
    void *handle = dlopen("libsecret-1.so.0", RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *message = dlerror();
        snprintf(failure, sizeof failure, "%s", message ? message : "libsecret-1.so.0 cannot be loaded");
        return;
    }
    for (size_t index = 0; index < sizeof required / sizeof required[0]; index++) {
        if (dlsym(handle, required[index]) == NULL) {
            snprintf(failure, sizeof failure, "libsecret-1.so.0 (or the GLib it uses) has no %s", required[index]);
            dlclose(handle);
            return;
        }
    }
    library = handle;
}

int rc_libsecret_load(const char **reason) {
    pthread_once(&loaded, load);
    if (library == NULL && reason != NULL) *reason = failure;
    return library != NULL;
}

// Callers check rc_libsecret_load first and report a missing library (or a missing function) as
// an unavailable keyring; reaching here without it is a defect.
static void *resolve(const char *name) {
    const char *reason = NULL;
    if (!rc_libsecret_load(&reason)) {
        fprintf(stderr, "rc-agent: %s\n", reason);
        abort();
    }
    void *function = dlsym(library, name);
    if (function == NULL) {
        fprintf(stderr, "rc-agent: libsecret-1.so.0 has no %s\n", name);
        abort();
    }
    return function;
}

// Each forwarder resolves its function once; the names are parenthesised so that GLib's
// function-like macros of the same names (g_object_ref) stay out of the way.
#define RC_TARGET(name) \
    static __typeof__(&(name)) target; \
    __typeof__(&(name)) real = __atomic_load_n(&target, __ATOMIC_ACQUIRE); \
    if (real == NULL) { \
        real = (__typeof__(&(name)))resolve(#name); \
        __atomic_store_n(&target, real, __ATOMIC_RELEASE); \
    }
#define RC_FORWARD(type, name, parameters, arguments) \
    __attribute__((visibility("hidden"))) type(name) parameters { RC_TARGET(name) return real arguments; }
#define RC_FORWARD_VOID(name, parameters, arguments) \
    __attribute__((visibility("hidden"))) void(name) parameters { RC_TARGET(name) real arguments; }

RC_FUNCTIONS(RC_FORWARD, RC_FORWARD_VOID)

// g_variant_new and g_variant_get are variadic: forwarded to their va_list forms, as GLib itself
// implements them.
__attribute__((visibility("hidden"))) GVariant *g_variant_new(const gchar *format_string, ...) {
    RC_TARGET(g_variant_new_va)
    va_list arguments;
    va_start(arguments, format_string);
    GVariant *value = real(format_string, NULL, &arguments);
    va_end(arguments);
    return value;
}

__attribute__((visibility("hidden"))) void g_variant_get(GVariant *value, const gchar *format_string, ...) {
    // As GLib does: direct-pointer formats need the value's data serialised first.
    if (strchr(format_string, '&') != NULL) {
        RC_TARGET(g_variant_get_data)
        real(value);
    }
    RC_TARGET(g_variant_get_va)
    va_list arguments;
    va_start(arguments, format_string);
    real(value, format_string, NULL, &arguments);
    va_end(arguments);
}
