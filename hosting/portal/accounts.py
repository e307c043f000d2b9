"""The portal's accounts pages: a tenant's members and invitations (owners), accepting an
invitation (anyone with the link), two-factor authentication (every login, staff's too),
and the login that asks for the second factor.

Lookups go through the user's own tenants — another tenant's member or invitation is not
found (404); one of the user's tenants where their role does not allow it is 403; the
writes and their rules (the last owner, one use per link) are hosting.members's."""

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from capacity.errors import Refusal, describe
from hosting import members, two_factor
from hosting.accounts import Action, may, tenants_where
from hosting.models import Invitation, Membership, Tenant
from hosting.portal.forms import CodeForm, InvitationForm, LoginForm, NewMemberForm, RoleForm
from hosting.portal.views import forbidden, tenant_required


class LoginView(auth_views.LoginView):
    """Username and password, then — for a user with two-factor on — the code, on one form."""

    template_name = "portal/login.html"
    authentication_form = LoginForm


# --- members ---------------------------------------------------------------------------------------


@require_GET
@tenant_required
def members_page(request):
    """Each tenant the user owns: its members with their roles, its pending invitations."""
    owned = tenants_where(request.user, Action.MANAGE_MEMBERS)
    if not owned:
        return forbidden(request, request.user.tenants.order_by("name").first(), Action.MANAGE_MEMBERS)
    tenants = Tenant.objects.filter(pk__in=owned).order_by("name").prefetch_related(
        Prefetch("memberships", queryset=Membership.objects.select_related("user").order_by("user__username")),
        Prefetch("invitations", queryset=Invitation.objects.pending().select_related("invited_by"),
                 to_attr="pending_invitations"),
    )  # fmt: skip
    context = {"tenants": tenants, "invite_form": InvitationForm(), "role_form": RoleForm()}
    return render(request, "portal/members.html", context)


def _membership(request, pk) -> Membership:
    """A membership of one of the user's tenants (another tenant's is not found)."""
    mine = Membership.objects.filter(tenant__in=request.user.tenants.all()).select_related("user", "tenant")
    return get_object_or_404(mine, pk=pk)


@require_POST
@tenant_required
def member_role(request, pk):
    membership = _membership(request, pk)
    if not may(request.user, membership.tenant_id, Action.MANAGE_MEMBERS):
        return forbidden(request, membership.tenant, Action.MANAGE_MEMBERS)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not changed: pick owner, operator or viewer.")
        return redirect("portal:members")
    try:
        changed = members.change_role(membership, form.cleaned_data["role"], by=request.user)
    except Refusal as refused:
        messages.error(request, f"Not changed: {describe(refused)}")
    else:
        messages.success(request, f"{changed.user} is now {changed.get_role_display()} of {changed.tenant}.")
    return redirect(
        "portal:members" if may(request.user, membership.tenant_id, Action.MANAGE_MEMBERS) else "portal:dashboard"
    )


@require_POST
@tenant_required
def member_remove(request, pk):
    membership = _membership(request, pk)
    if not may(request.user, membership.tenant_id, Action.MANAGE_MEMBERS):
        return forbidden(request, membership.tenant, Action.MANAGE_MEMBERS)
    try:
        members.remove(membership, by=request.user)
    except Refusal as refused:
        messages.error(request, f"Not removed: {describe(refused)}")
        return redirect("portal:members")
    messages.success(request, f"{membership.user} no longer acts for {membership.tenant}.")
    if not request.user.tenants.exists():  # they removed themselves from their only tenant
        return redirect("portal:login")
    return redirect("portal:members" if tenants_where(request.user, Action.MANAGE_MEMBERS) else "portal:dashboard")


# --- invitations -------------------------------------------------------------------------------------


@require_POST
@tenant_required
def invite(request):
    tenant = get_object_or_404(request.user.tenants.all(), slug=request.POST.get("tenant", ""))
    if not may(request.user, tenant, Action.MANAGE_MEMBERS):
        return forbidden(request, tenant, Action.MANAGE_MEMBERS)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not invited: " + " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("portal:members")

    def link_for(token: str) -> str:
        return request.build_absolute_uri(reverse("portal:invitation", args=[token]))

    try:
        invitation = members.invite(
            tenant, form.cleaned_data["email"], form.cleaned_data["role"], by=request.user, link_for=link_for
        )
    except Refusal as refused:
        messages.error(request, f"Not invited: {describe(refused)}")
    else:
        messages.success(request, f"Invitation e-mailed to {invitation.email} ({invitation.get_role_display()}).")
    return redirect("portal:members")


@require_POST
@tenant_required
def invitation_revoke(request, pk):
    invitation = get_object_or_404(Invitation.objects.filter(tenant__in=request.user.tenants.all()), pk=pk)
    if not may(request.user, invitation.tenant_id, Action.MANAGE_MEMBERS):
        return forbidden(request, invitation.tenant, Action.MANAGE_MEMBERS)
    try:
        members.revoke_invitation(invitation, by=request.user)
    except Refusal as refused:
        messages.error(request, f"Not withdrawn: {describe(refused)}")
    else:
        messages.success(request, f"The invitation of {invitation.email} is withdrawn: its link no longer works.")
    return redirect("portal:members")


STATE_STATUS = {"accepted": 410, "revoked": 410, "expired": 410}


@require_http_methods(["GET", "POST"])
def invitation(request, token: str):
    """The link an invitation e-mails: a logged-in user accepts it; someone without a login
    picks a username and a password. Used, withdrawn or expired links say so (410)."""
    found = members.find(token)
    if found is None:
        return render(request, "portal/invitation.html", {"unknown": True}, status=404)
    state = found.state()
    context: dict = {"invitation": found, "state": state, "error": None}
    if state != "pending":
        return render(request, "portal/invitation.html", context, status=STATE_STATUS[state])
    form = NewMemberForm(request.POST or None, email=found.email) if not request.user.is_authenticated else None
    if request.method == "POST":
        try:
            if request.user.is_authenticated:
                membership = members.accept(token, request.user)
            elif form is not None and form.is_valid():
                membership = members.accept_as_new_user(
                    token, username=form.cleaned_data["username"], password=form.cleaned_data["password1"]
                )
                auth_login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                membership = None
        except Refusal as refused:
            context |= {"error": describe(refused), "state": members.find(token).state()}  # type: ignore[union-attr]
            return render(request, "portal/invitation.html", context | {"form": form}, status=409)
        if membership is not None:
            role = membership.get_role_display()
            messages.success(request, f"Welcome to {membership.tenant}: you act for it as {role}.")
            return redirect("portal:dashboard")
    return render(request, "portal/invitation.html", context | {"form": form})


# --- two-factor -----------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def two_factor_page(request):
    """On or off; to turn it on, a pending device's QR code and the form for its first code."""
    user = request.user
    if request.method == "POST":  # start (again): a new secret to scan
        if two_factor.enabled(user):  # a new app replaces the old only after turning it off, with a code
            messages.error(request, "Two-factor is already on: turn it off (with a code) to use another app.")
        else:
            two_factor.start(user)
        return redirect("portal:two-factor")
    pending = None if two_factor.enabled(user) else two_factor.pending_device(user)
    context = {"enabled": two_factor.enabled(user), "pending": pending, "form": CodeForm()}
    if pending is not None:
        context |= {"qr_svg": two_factor.qr_svg(pending), "otpauth_url": pending.config_url,
                    "secret": two_factor.secret_of(pending)}  # fmt: skip
    return render(request, "portal/two_factor.html", context)


@require_POST
@login_required
def two_factor_confirm(request):
    pending = two_factor.pending_device(request.user)
    form = CodeForm(request.POST)
    if pending is None:
        messages.error(request, "Start again: there is no authenticator waiting for its first code.")
        return redirect("portal:two-factor")
    codes = two_factor.confirm(pending, form.data.get("code", "")) if form.is_valid() else None
    if codes is None:
        messages.error(request, "That code is not right: check the app's clock and try the newest code.")
        return redirect("portal:two-factor")
    return render(request, "portal/two_factor_codes.html", {"codes": codes, "just_enabled": True})


@require_POST
@login_required
def two_factor_recovery(request):
    """Ten new recovery codes (the old ones stop working), proven with a current code."""
    form = CodeForm(request.POST)
    if (
        not two_factor.enabled(request.user)
        or not form.is_valid()
        or not two_factor.verify(request.user, form.cleaned_data["code"])
    ):
        messages.error(request, "No new recovery codes: the code is not right.")
        return redirect("portal:two-factor")
    codes = two_factor.new_recovery_codes(request.user)
    return render(request, "portal/two_factor_codes.html", {"codes": codes, "just_enabled": False})


@require_POST
@login_required
def two_factor_disable(request):
    form = CodeForm(request.POST)
    if form.is_valid() and two_factor.disable(request.user, form.cleaned_data["code"]):
        messages.success(request, "Two-factor is off: logging in asks for your password only.")
    else:
        messages.error(request, "Two-factor stays on: the code is not right.")
    return redirect("portal:two-factor")
