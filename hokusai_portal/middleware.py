"""Input refused at the edge, before any view or query sees it."""

from django.http import HttpRequest, HttpResponse


class RefuseNulBytes:
    """A NUL character in a query string or form field is never meaningful here, and PostgreSQL refuses it
    in text (a DataError, so a 500): answer 400 with a message instead, and change nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.method == "POST" and request.content_type not in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            params = [request.GET]
        else:
            params = [request.GET, request.POST]
        for query in params:
            for key, values in query.lists():
                if "\x00" in key or any("\x00" in value for value in values):
                    return HttpResponse(
                        "Bad request: a field or query parameter contains a NUL character. Nothing was changed.",
                        status=400,
                        content_type="text/plain; charset=utf-8",
                    )
        return self.get_response(request)
