# Django: real request handling via django.test.Client; capture the django.request log lines as Django formats them
import logging, io
import django
from django.conf import settings
settings.configure(DEBUG=False, ALLOWED_HOSTS=['*'], ROOT_URLCONF=__name__, SECRET_KEY='x', MIDDLEWARE=[], DATA_UPLOAD_MAX_MEMORY_SIZE=100)
django.setup()
from django.urls import path
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_POST
from django.views.decorators.csrf import csrf_exempt
from django.core.exceptions import PermissionDenied
from emit import emit, ver
@csrf_exempt
@require_POST
def only_post(request): return HttpResponse('ok')
def denied(request): raise PermissionDenied
@csrf_exempt
def body(request): request.POST; return HttpResponse('ok')
urlpatterns = [path('only-post', only_post), path('denied', denied), path('body', body)]
recs = []
class H(logging.Handler):
    def emit(self, record): recs.append(record)
h = H()
for n in ('django.request', 'django.security'): logging.getLogger(n).addHandler(h); logging.getLogger(n).setLevel(logging.DEBUG); logging.getLogger(n).propagate = False
from django.test import Client
c = Client(raise_request_exception=False)
v = ver('Django')
for label, how, f in [('routing', 'GET /x (no urlpattern)', lambda: c.get('/x')),
                      ('routing', 'GET /only-post (require_POST)', lambda: c.get('/only-post')),
                      ('auth', 'GET /denied (view raises PermissionDenied)', lambda: c.get('/denied')),
                      ('transform', 'POST 200-byte form body, DATA_UPLOAD_MAX_MEMORY_SIZE=100', lambda: c.post('/body', data='a=' + 'x' * 200, content_type='application/x-www-form-urlencoded'))]:
    recs.clear(); r = f()
    for rec in recs:
        name, lvl, msg = rec.name, rec.levelname, rec.getMessage()
        emit('Django', v, label, msg, f"django.test.Client {how}; HTTP {r.status_code}; logger '{name}' {lvl}, DEBUG=False")
