#!/usr/bin/python3
# A stand-in for the desktop's notification daemon, for tests: owns org.freedesktop.Notifications
# on the (private) session bus and appends each Notify call to the file named by argv[1] as a JSON
# line. Prints "ready" once it owns the name. Debian's python3-dbus and python3-gi.
import json
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

INTERFACE = "org.freedesktop.Notifications"


class Notifications(dbus.service.Object):
    def __init__(self, bus, record):
        super().__init__(bus, "/org/freedesktop/Notifications")
        self.record = record
        self.next_id = 1

    @dbus.service.method(INTERFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces, icon, summary, body, actions, hints, timeout):
        with open(self.record, "a") as f:
            f.write(json.dumps({"app": str(app), "icon": str(icon), "summary": str(summary), "body": str(body)}) + "\n")
        self.next_id += 1
        return self.next_id - 1

    @dbus.service.method(INTERFACE, out_signature="as")
    def GetCapabilities(self):
        return ["body"]

    @dbus.service.method(INTERFACE, out_signature="ssss")
    def GetServerInformation(self):
        return ("rc-agent-test-notifications", "rc-agent", "1", "1.2")


dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.SessionBus()
name = dbus.service.BusName(INTERFACE, bus, do_not_queue=True)
Notifications(bus, sys.argv[1])
print("ready", flush=True)
GLib.MainLoop().run()
