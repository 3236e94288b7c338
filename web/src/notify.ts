// The installable app and its notifications: the service worker (which keeps
// the app's shell, public/sw.js), and a notification when a session's agent
// starts waiting — for approval, or for the user's next message — while a
// dashboard tab is open (the Notification API, shown through the service
// worker, so a click opens that session), and through Web Push when none is
// (the browser's push service wakes the service worker with the daemon's
// message). Both use the session's tag, so the two never show twice.
import { useEffect, useState } from "react";
import { getPush, subscribePush, type Subscription } from "./api/client";
import { follow } from "./api/events";

const WAITING: Record<string, string> = {
  "waiting-for-approval": "is waiting for your approval",
  "waiting-for-input": "is waiting for your next message",
};

/** An event replayed after a reconnect is told only if it is this recent. */
const RECENT_MS = 5 * 60_000;

/** Register the service worker (the app's shell, notifications). */
export function registerServiceWorker() {
  // Not in a browser without it, nor where the page is not a secure context
  // (the daemon's loopback address is one).
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => undefined);
}

/** Whether this browser may show notifications: granted, denied, not asked yet, or unsupported. */
export function useNotificationPermission(): [NotificationPermission | "unsupported", () => void] {
  const supported = typeof Notification !== "undefined";
  const [permission, setPermission] = useState<NotificationPermission | "unsupported">(
    supported ? Notification.permission : "unsupported",
  );
  const ask = () => {
    if (!supported) return;
    void Notification.requestPermission().then((p) => {
      setPermission(p);
      if (p === "granted") subscribeThisBrowser().catch((e) => console.warn(`Web Push: ${e instanceof Error ? e.message : e}`));
    });
  };
  return [permission, ask];
}

/**
 * Subscribe this browser to Web Push (through its push service, with the
 * daemon's VAPID key) and give the daemon the subscription. Throws with the
 * browser's or the API's words when it cannot (no push service reachable, a
 * browser without the Push API, the daemon's refusal).
 */
export async function subscribeThisBrowser(): Promise<void> {
  if (!("serviceWorker" in navigator) || typeof PushManager === "undefined") {
    throw new Error("this browser has no Push API; notifications come only while a tab is open");
  }
  const registration = await navigator.serviceWorker.ready;
  const { public_key } = await getPush();
  const key = Uint8Array.from(atob(public_key.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const existing = await registration.pushManager.getSubscription();
  const subscription =
    existing ?? (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }));
  await subscribePush(subscription.toJSON() as Subscription);
}

async function show(title: string, body: string, tag: string, url: string) {
  const options: NotificationOptions = { body, tag, icon: "/icon-192.png", data: { url } };
  const registration = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration() : undefined;
  if (registration) await registration.showNotification(title, options);
  else new Notification(title, options);
}

/** While mounted, notify when any session's agent starts waiting. */
export function useWaitingNotifications() {
  // Notifications allowed: keep this browser's Web Push subscription with the
  // daemon (it may have been made elsewhere, or forgotten as gone).
  useEffect(() => {
    if (typeof Notification !== "undefined" && Notification.permission === "granted") {
      subscribeThisBrowser().catch((e) => console.warn(`Web Push: ${e instanceof Error ? e.message : e}`));
    }
  }, []);
  useEffect(
    () =>
      follow({
        event(e) {
          if (e.type !== "agent-status-changed") return;
          const what = WAITING[e.to];
          if (!what || typeof Notification === "undefined" || Notification.permission !== "granted") return;
          if (Date.now() - e.at > RECENT_MS) return;
          // One notification per session: a newer one replaces it (and other tabs' copies).
          void show(`${e.session_name} ${what}`, "Open the session in clauderon.", `clauderon-${e.session_id}`, `/sessions/${encodeURIComponent(e.session_name)}`);
        },
      }),
    [],
  );
}
